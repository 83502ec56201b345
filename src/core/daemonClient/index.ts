// The VS Code-free client side of the sidecar: find or start the daemon, talk to it.
export { connectOrStartSidecar, locateOrStartDaemon } from './launcher';
export type { ConnectOrStartOptions } from './launcher';
export { SidecarClient } from './client';
export type { SidecarClientEvents, SidecarClientOptions } from './client';
export { SidecarError, SidecarIncompatibleError, describeServerLoss } from './errors';
export type { ClientErrorCode } from './errors';
export { readSidecarLock, isLockLive, sidecarLockPath, DAEMON_LOG_NAME, SERVER_LOG_NAME } from './lockFile';
export type { SidecarLock } from './lockFile';
