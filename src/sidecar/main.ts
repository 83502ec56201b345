// Sidecar daemon entry point. The daemon itself (one shared llama-server per machine, control
// socket, supervision) is tracked by the sidecar issue; until it lands this entry only reports
// that, so that a bundle exists and nobody mistakes it for a working daemon.
process.stderr.write('strata sidecar: the managed daemon is not implemented yet; start llama-server with "npm start".\n');
process.exit(2);
