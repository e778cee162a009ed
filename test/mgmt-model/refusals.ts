/**
 * What a clear refusal looks like: every error an operation may answer with,
 * by reason. An error that matches none of these (a raw EISDIR, "Cannot read
 * properties of undefined", a timeout) is not a refusal but a failure of the
 * management plane, and fails the model test.
 */
/** A guest without room for another vif's buffers, or a domain asked for with too little RAM. */
export const MEMORY =
  /memPages: must be an integer from \d+ to \d+ \(4 KiB pages: |its RAM \(\d+ pages\) holds the buffers of \d+ vif\(s\); \d+ need \d+ pages/;

export const REFUSALS: [reason: string, pattern: RegExp][] = [
  ['no such host', /no host "?[^" ]*"? \(hosts: |no management device "[^"]*" \(have: /],
  ['no such domain', /no domain "[^"]+" on \S+ \(domains: /],
  ['is dom0', /is dom0: /],
  ['name taken', /domU name "[^"]+" is used twice on |\S+ is taken: a guest of that name is migrating there from /],
  ['reserved name', /"[^"]+" is reserved: it names the host's dom0/],
  ['bad name', /is not a domain name \(\[a-z0-9-\]\)/],
  ['IP taken', /IP \S+ is already used by |IP \S+ is taken by \S+, migrating from /],
  ['MAC taken', /MAC \S+ is already used by |MAC \S+ is taken by \S+, migrating from /],
  // The validator's words, or (since issue 20's "smaller" item) what the guest lacks and how much it needs.
  ['memory', MEMORY],
  ['vif count', /must have 1 to \d+ vifs/],
  // The toolstack's sum counts netfront's buffers only; a plugin's areas in the guest (vnic: 396 frames a vif) take more.
  ['guest memory', /dev add \S+ failed: the guest says: probe failed: out of guest memory: .* \(the vif was removed again\)/],
  // One end per domain, and no end beside a hotplug (domain-locks.ts).
  [
    'domain busy',
    /is already busy with its .+: refused|has .+ in progress: refused, try again when it is done|is busy with its .+: .+ refused|is already going away|is going away|has no memory record \(it is being torn down\)/,
  ],
  ['vif name taken', /already has vif\d+ \(vifs: /],
  ['bad vif name', /is not vifN \(N a handle, 0\.\.255\)/],
  ['no such vif', /has no vif\d+( \(vifs: |$)/],
  ['last vif', /is the guest's last vif.*: a guest keeps one|\/vif\d+ is already being deleted/],
  ['vif MTU', /mtu \d+: a vif's MTU is 68\.\.\d+ \(the NIC's\)/],
  ['migration MTU', /its vifs use MTU \d+, the destination's NIC carries \d+/],
  [
    'output path',
    /: is (a directory|a FIFO|a device|a socket|a symbolic link|not a regular file); give a regular file or a new name|: no such directory |is not a directory$|: directory \S+ is not writable/,
  ],
  ['output busy', /: cannot create \S+\.partial: EEXIST/],
  ['unreadable image', /cannot read save image \S+: /],
  ['bad image', /: not a usable xsim save image: /],
  ['plugin loaded', /plugin \S+ is already load(ed|ing)/],
  ['plugin not loaded', /plugin \S+ is not loaded/],
  ['plugin unloading', /plugin \S+ is already unloading/],
  ['another accelerator', /another vif accelerator is loaded \([^)]+\): unload it first/],
  ['capture busy', /capture: already capturing into |capture: a capture into \S+ is starting/],
  ['not capturing', /capture: not capturing/],
  ['no tap point', /capture: no tap point matches "[^"]+"/],
  ['trace busy', /trace: already tracing into |trace: a trace into \S+ is starting/],
  ['not tracing', /trace: not tracing/],
  ['NIC MTU', /primary driver refused MTU \d+|MTU must be an integer from 68 to 9000|refused MTU \d+/],
  ['save resumed', /; \S+ was resumed on \S+$/],
  ['no free address', /no free (MAC|IPv4) address|no free domid on /],
];

/** The reason of a refusal, or undefined if `message` is no clear refusal. */
export function refusalReason(message: string): string | undefined {
  return REFUSALS.find(([, re]) => re.test(message))?.[0];
}
