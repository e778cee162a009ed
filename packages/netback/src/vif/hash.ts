/**
 * A vif's receive-side steering, after Linux xen-netback's hash.c and
 * xenvif_select_queue (interface.c): the hash the frontend configures over
 * the control ring (algorithm, hash types, key, mapping table), each setter
 * answering with Linux's status and limits, and the queue each frame for the
 * guest goes to.
 *
 *   no algorithm   netdev_pick_tx: the frame's flow hash (skb_get_hash),
 *                  scaled into the queues (reciprocal_scale), % queues
 *   Toeplitz       the hash of what the configured types select
 *                  (xenvif_set_skb_hash; 0 when none applies), then
 *                  mapping[hash % size], or hash % queues with no table
 *
 * The mapping table is double-buffered as Linux's (mapping_sel): a
 * SET_HASH_MAPPING is written into the other copy and checked, and only a
 * table whose every entry names a queue becomes the one frames are steered
 * by. Linux also caches computed hashes (xenvif_hash_cache_size, 64 by
 * default); xsim computes each afresh.
 */
import {
  XEN_NETIF_CTRL_HASH_ALGORITHM_NONE,
  XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4,
  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6,
  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP,
  XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
  XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED,
  XEN_NETIF_CTRL_STATUS_SUCCESS,
  PAGE_SIZE,
  flowHash,
  hashInput,
  newFlowKeys,
  reciprocalScale,
  xenNetifToeplitzHash,
} from '@xsim/hypervisor';

/** XEN_NETBK_MAX_HASH_KEY_SIZE: the longest key (octets). */
export const MAX_HASH_KEY_SIZE = 40;
/** XEN_NETBK_MAX_HASH_MAPPING_SIZE: the largest mapping table (entries); GET_HASH_MAPPING_SIZE answers it. */
export const MAX_HASH_MAPPING_SIZE = 128;
/** The hash types Linux's netback computes (what GET_HASH_FLAGS answers). */
export const HASH_TYPES_ALL =
  XEN_NETIF_CTRL_HASH_TYPE_IPV4 | XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP | XEN_NETIF_CTRL_HASH_TYPE_IPV6 | XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP;

/** Copies `len` octets of the frontend's granted page `gref` into `dst` at `dstOff` (a grant copy): false when the copy fails. */
export type GrantCopyIn = (gref: number, len: number, dst: Uint8Array, dstOff: number) => boolean;

export class VifHash {
  alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
  flags = 0;
  readonly key = new Uint8Array(MAX_HASH_KEY_SIZE);
  /** Entries of the mapping table (0: steer by hash % queues). */
  size = 0;
  private readonly mapping = [new Uint32Array(MAX_HASH_MAPPING_SIZE), new Uint32Array(MAX_HASH_MAPPING_SIZE)];
  private sel = 0;
  private readonly keys = newFlowKeys();
  private readonly input = new Uint8Array(MAX_HASH_KEY_SIZE);
  /**
   * What selectQueue computed for the last frame: -1 when it set no hash
   * (no algorithm, or no configured type applies), else the hash type's
   * bit number * 2^32 + the hash: what the RX HASH extra-info slot carries.
   */
  lastHash = -1;

  /** The table frames are steered by now. */
  get table(): Uint32Array {
    return this.mapping[this.sel].subarray(0, this.size);
  }

  /** A connection's end: nothing configured (xsim forgets the hash with the control ring; see the README). */
  reset(): void {
    this.alg = XEN_NETIF_CTRL_HASH_ALGORITHM_NONE;
    this.flags = 0;
    this.key.fill(0);
    this.size = 0;
    this.mapping[0].fill(0);
    this.mapping[1].fill(0);
    this.sel = 0;
  }

  /** xenvif_set_hash_alg: NONE or TOEPLITZ, else INVALID_PARAMETER. */
  setAlg(alg: number): number {
    if (alg !== XEN_NETIF_CTRL_HASH_ALGORITHM_NONE && alg !== XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    this.alg = alg;
    return XEN_NETIF_CTRL_STATUS_SUCCESS;
  }

  /** xenvif_get_hash_flags: NOT_SUPPORTED until an algorithm is chosen, then every type. */
  getFlags(): { status: number; data: number } {
    if (this.alg === XEN_NETIF_CTRL_HASH_ALGORITHM_NONE) return { status: XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED, data: 0 };
    return { status: XEN_NETIF_CTRL_STATUS_SUCCESS, data: HASH_TYPES_ALL };
  }

  /** xenvif_set_hash_flags: an unknown type bit, or no algorithm yet, is INVALID_PARAMETER. */
  setFlags(flags: number): number {
    if ((flags & ~HASH_TYPES_ALL) !== 0) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    if (this.alg === XEN_NETIF_CTRL_HASH_ALGORITHM_NONE) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    this.flags = flags >>> 0;
    return XEN_NETIF_CTRL_STATUS_SUCCESS;
  }

  /** xenvif_set_hash_key: over 40 octets, or a copy that fails, is INVALID_PARAMETER; octets past `len` become 0. */
  setKey(gref: number, len: number, copyIn: GrantCopyIn): number {
    if (len > MAX_HASH_KEY_SIZE) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    if (len !== 0 && !copyIn(gref, len, this.key, 0)) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    this.key.fill(0, len);
    return XEN_NETIF_CTRL_STATUS_SUCCESS;
  }

  /** xenvif_set_hash_mapping_size: over 128 is INVALID_PARAMETER; the table is zeroed (every hash to queue 0). */
  setMappingSize(size: number): number {
    if (size > MAX_HASH_MAPPING_SIZE) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    this.size = size;
    this.mapping[this.sel].fill(0, 0, size);
    return XEN_NETIF_CTRL_STATUS_SUCCESS;
  }

  /**
   * xenvif_set_hash_mapping: `len` entries (u32, little-endian) from the
   * frontend's page into the table at `off`. The range must lie in the table
   * (no u32 wrap) and in a page, the copy must succeed and every entry must
   * name a queue, else INVALID_PARAMETER and the table in use is unchanged.
   */
  setMapping(gref: number, len: number, off: number, numQueues: number, copyIn: GrantCopyIn): number {
    const end = (off + len) >>> 0;
    if (end < off || end > this.size || len > PAGE_SIZE / 4) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    const next = this.mapping[this.sel ^ 1];
    next.set(this.mapping[this.sel].subarray(0, this.size));
    if (len !== 0) {
      const bytes = new Uint8Array(len * 4);
      if (!copyIn(gref, len * 4, bytes, 0)) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < len; i++) next[off + i] = dv.getUint32(i * 4, true);
    }
    for (let i = off; i < end; i++) if (next[i] >= numQueues) return XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER;
    this.sel ^= 1;
    return XEN_NETIF_CTRL_STATUS_SUCCESS;
  }

  /** xenvif_select_queue for a frame in `ram` at `addr` (sets lastHash). */
  selectQueue(ram: Uint8Array, addr: number, len: number, numQueues: number): number {
    this.lastHash = -1;
    if (numQueues <= 1 && this.alg === XEN_NETIF_CTRL_HASH_ALGORITHM_NONE) return 0;
    if (this.alg === XEN_NETIF_CTRL_HASH_ALGORITHM_NONE) return reciprocalScale(flowHash(ram, addr, len, this.keys), numQueues) % numQueues;
    const hash = this.skbHash(ram, addr, len);
    if (this.size === 0) return hash % numQueues;
    return this.mapping[this.sel][hash % this.size];
  }

  /** xenvif_set_skb_hash: the Toeplitz hash of what the configured types select, or 0 (and no lastHash) when none does. */
  private skbHash(ram: Uint8Array, addr: number, len: number): number {
    if (this.flags === 0) return 0;
    const r = hashInput(ram, addr, len, this.flags, this.keys, this.input);
    if (!r) return 0;
    const h = xenNetifToeplitzHash(this.key, MAX_HASH_KEY_SIZE, this.input, 0, r.len);
    this.lastHash = r.type * 0x1_0000_0000 + h;
    return h;
  }

  /** What `xsim dev stats` shows of it. */
  describe() {
    return {
      algorithm: this.alg === XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ ? 'toeplitz' : this.alg === XEN_NETIF_CTRL_HASH_ALGORITHM_NONE ? 'none' : String(this.alg),
      flags: this.flags,
      mappingSize: this.size,
      mapping: [...this.table],
    };
  }
}
