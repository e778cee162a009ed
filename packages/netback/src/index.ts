export { Bridge, BRIDGE_COUNTERS, type BridgePort, type BridgeStats, type GsoFrame } from './bridge.ts';
export { SkbPool, skbPages, MIN_SKBS, CSUM_NONE, CSUM_UNNECESSARY, CSUM_PARTIAL, type CsumState } from './skb.ts';
export { VifBackend } from './vif/xenbus.ts';
export { backendNextHop } from './vif/states.ts';
export { VIF_COUNTERS, VIF_TUNABLES, NO_SG_MAX_FRAME, type VifDeps, type VifCounters, type VifPort, type XsLike, type EvtchnLike } from './vif/common.ts';
export { TxCredit, RateNode, parseRate, CREDIT_MAX_BURST, type Rate } from './vif/credit.ts';
export { backendFeatures, MAX_QUEUES_DEFAULT, type NetbackParams, type FrontendFlags } from './vif/features.ts';
export { VifHash, MAX_HASH_KEY_SIZE, MAX_HASH_MAPPING_SIZE, HASH_TYPES_ALL } from './vif/hash.ts';
export { VifBackends } from './backends.ts';
export { UplinkPort, UPLINK_COUNTERS, type UplinkDriver, type UplinkStats } from './uplink.ts';
export { dom0MinPages, type Dom0Config } from './dom0.ts';
export type { Dom0Stats } from './kernel/stats.ts';
export type { AccelBackend, AccelBackendContext, AccelVif, AccelVifConfig, BackendModule, JsonSchema, PluginManifest } from './accel-api.ts';
export { ACCEL_BACKEND_HOOKS, FEATURE_HOOKS } from './accel-api.ts';
export { AccelManager, ACCEL_MANAGER_COUNTERS, UNLOAD_DETACH_MS } from './accel.ts';
export { admitBackend, admitPlugin, backendProblems } from './accel-admit.ts';
export {
  CHANNEL_OP,
  FRAMEWORK_MESSAGES,
  MANIFEST_SCHEMA,
  PLUGIN_API_VERSION,
  apiVersionProblem,
  manifestProblems,
  messageProblem,
  pluginMessage,
  schemaProblem,
  Type,
} from './plugin-protocol.ts';

/** The dom0 kernel module, for DomainTask.kernel. */
export const DOM0_KERNEL = new URL('./dom0.ts', import.meta.url).href;
