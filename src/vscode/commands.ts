import * as vscode from 'vscode';
import { Capability, CommandId, COMMANDS } from './commandIds';

// The one way Strata registers commands: each capability hands a table (command id -> handler)
// to registerCommands. The table's type has exactly the ids commandIds.ts lists for the
// capability, so a command missing from it, or one it does not declare, fails to compile;
// test/unit/commands.test.ts holds the lists to package.json and checks that nothing else calls
// vscode.commands.registerCommand.

/** VS Code passes command arguments untyped (from keybindings, menus, other extensions): each handler checks its own. */
export type CommandHandler = (...args: any[]) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any -- see above

export type CommandTable<C extends Capability> = { readonly [K in CommandId<C>]: CommandHandler };

export function registerCommands<C extends Capability>(capability: C, table: CommandTable<C>): vscode.Disposable[] {
  const ids: readonly CommandId<C>[] = COMMANDS[capability];
  return ids.map((id) => vscode.commands.registerCommand(id, table[id]));
}
