// The sidecar and the agent come from one build, but the agent is copied to its machine once
// (README: "scp the file") and an update of the extension does not reach it. So each side
// compares the other's peer protocol version on every connection and says, in one sentence,
// both versions and which side to update; the older side cannot know what changed.

export interface VersionSide {
  protocol: number;
  /** The Strata release; unknown for agents from before versions were answered. */
  version?: string;
}

const COPY_HINT = 'scp ~/.vscode/extensions/strata.strata-coder-*/dist/peer.js';

/** What the sidecar (or `strata-peer info`) tells its user about the agent at `label`; undefined: compatible. */
export function mismatchSeenByClient(label: string, agent: VersionSide, client: VersionSide): string | undefined {
  if (agent.protocol === client.protocol) return undefined;
  const theirs = `strata-peer ${agent.version ?? 'from an older Strata'} (peer protocol ${agent.protocol})`;
  const ours = `this Strata${client.version ? ` ${client.version}` : ''} (peer protocol ${client.protocol})`;
  return agent.protocol < client.protocol
    ? `${label} runs ${theirs}, older than ${ours}: copy the agent from this machine to that one (${COPY_HINT} HOST:strata-peer.js) and restart strata-peer there.`
    : `${label} runs ${theirs}, newer than ${ours}: update Strata Coder on this machine, or run there the strata-peer that came with this Strata.`;
}

/** What the agent logs and answers about the client at `from`; undefined: compatible. */
export function mismatchSeenByAgent(from: string, client: VersionSide, agent: VersionSide): string | undefined {
  if (agent.protocol === client.protocol) return undefined;
  const theirs = `Strata ${client.version ?? '(version not sent)'} (peer protocol ${client.protocol})`;
  const ours = `this strata-peer${agent.version ? ` ${agent.version}` : ''} (peer protocol ${agent.protocol})`;
  return client.protocol > agent.protocol
    ? `${from} runs ${theirs}, newer than ${ours}: copy the agent from that machine here (${COPY_HINT} on it) and restart strata-peer.`
    : `${from} runs ${theirs}, older than ${ours}: update Strata Coder on that machine, or run here the strata-peer that came with it.`;
}
