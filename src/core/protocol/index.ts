// Sidecar <-> extension control protocol: message types and their codec.
export * from './messages';
export * from './cluster';
export * from './codec';
