// Every command Strata registers, by capability: the one list that package.json's
// `contributes.commands`, the registry (commands.ts) and test/unit/commands.test.ts agree on.
// No `vscode` import, so the unit test reads it as it is. A capability's commands are registered
// together, in one place, with registerCommands(capability, table).

export const COMMANDS = {
  walkthrough: [
    'strata.walkthrough.open',
    'strata.walkthrough.checkMachine',
    'strata.walkthrough.findServer',
    'strata.walkthrough.tryIt',
    'strata.walkthrough.ask',
  ],
  server: [
    'strata.showServerStatus',
    'strata.server.start',
    'strata.server.stop',
    'strata.server.restart',
    'strata.server.showLogs',
    'strata.server.build',
    'strata.server.download',
    'strata.server.benchmarkBackends',
  ],
  completionToggle: ['strata.toggleCompletions'],
  completion: ['strata.completion.trigger', 'strata.completion.showStatus', 'strata.completion.accepted', 'strata.completion.stats'],
  chat: [
    'strata.chat.open',
    'strata.chat.newChat',
    'strata.chat.askAboutSelection',
    'strata.chat.explain',
    'strata.chat.fixProblem',
    'strata.chat.addFile',
    'strata.chat.stop',
    'strata.chat.regenerate',
    'strata.chat.showHistory',
    'strata.chat.clearHistory',
    'strata.chat.send',
    'strata.chat.state',
  ],
  chatProposals: ['strata.chat.acceptProposal', 'strata.chat.rejectProposal'],
  models: ['strata.models.switch'],
  cluster: ['strata.cluster.addPeer', 'strata.cluster.show', 'strata.cluster.removePeer'],
} as const satisfies Record<string, readonly `strata.${string}`[]>;

export type Capability = keyof typeof COMMANDS;

export type CommandId<C extends Capability = Capability> = (typeof COMMANDS)[C][number];

/** Registered but not in the Command Palette: run by an accepted inline completion, and by tests and bug reports. */
export const INTERNAL_COMMANDS: readonly CommandId[] = ['strata.completion.accepted', 'strata.completion.stats'];
