// `strata-peer`, the LAN peer agent entry point. The agent (authenticated rpc-server
// management and tunnel) is tracked by the cluster issue; until then it only says so.
const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('strata-peer 0.1.0 (agent not implemented yet)\n');
  process.exit(0);
}
process.stderr.write('strata-peer: the peer agent is not implemented yet.\n');
process.exit(2);
