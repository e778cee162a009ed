/** The vif xenstore protocol lives in @xsim/hypervisor (abi/vif-xenstore.ts); re-exported for netfront's users. */
export { XenbusState, vifFrontendPath as frontendPath, vifBackendPath as backendPath, parseState, STATE_NAMES, stateName, type XsLike } from '@xsim/hypervisor';
