// The daemon's pid files for its llama-servers. The mechanism lives in src/core (spawnGuarded's
// fallback uses it too); this is the sidecar's name for it.
export { ChildRegistry, judgeRecord, terminate, type ChildRecord, type StaleVerdict } from '../core/daemonClient/childRegistry';
