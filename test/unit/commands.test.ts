import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Capability, COMMANDS, INTERNAL_COMMANDS } from '../../src/vscode/commandIds';

// One command registry: package.json's `contributes.commands`, the per-capability lists of
// src/vscode/commandIds.ts and the registrations in src/ agree. registerCommands() registers
// exactly a capability's list (its table's type has exactly those ids), so what is left to check
// here is that the lists match package.json, that each capability registers in one place, and
// that nothing registers a command around the registry.

const ROOT = path.resolve(__dirname, '../..');
const REGISTRY = 'src/vscode/commands.ts';

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

describe('commands: one registry', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const contributed: string[] = (pkg.contributes.commands as { command: string }[]).map((c) => c.command);
  const declared: string[] = Object.values(COMMANDS).flat();
  const src = new Map(sources('src').map((f) => [f, fs.readFileSync(path.join(ROOT, f), 'utf8')]));

  it('declares every command package.json contributes exactly once, and nothing else but the internal ones', () => {
    const twice = declared.filter((id, i) => declared.indexOf(id) !== i);
    assert.deepStrictEqual(twice, [], `declared in more than one place: ${twice.join(', ')}`);
    const missing = contributed.filter((id) => !declared.includes(id));
    assert.deepStrictEqual(missing, [], `contributed but declared by no capability in commandIds.ts: ${missing.join(', ')}`);
    const extra = declared.filter((id) => !contributed.includes(id) && !INTERNAL_COMMANDS.includes(id as never));
    assert.deepStrictEqual(extra, [], `declared but neither contributed in package.json nor listed as internal: ${extra.join(', ')}`);
    const shown = INTERNAL_COMMANDS.filter((id) => contributed.includes(id));
    assert.deepStrictEqual(shown, [], `internal commands that package.json contributes: ${shown.join(', ')}`);
  });

  it('nothing but the registry calls vscode.commands.registerCommand', () => {
    const around = [...src].filter(([f, text]) => f !== REGISTRY && /\bregister(TextEditor)?Command\s*\(/.test(text)).map(([f]) => f);
    assert.deepStrictEqual(around, [], `register commands through registerCommands() (${REGISTRY}): ${around.join(', ')}`);
    assert.match(src.get(REGISTRY) ?? '', /vscode\.commands\.registerCommand\(/);
  });

  it('registers each capability in exactly one place', () => {
    const calls = new Map<string, string[]>();
    for (const [f, text] of src) {
      for (const m of text.matchAll(/\bregisterCommands\(\s*'(\w+)'/g)) calls.set(m[1], [...(calls.get(m[1]) ?? []), f]);
    }
    for (const cap of Object.keys(COMMANDS) as Capability[]) {
      assert.strictEqual(calls.get(cap)?.length, 1, `capability "${cap}" is registered in ${calls.get(cap)?.join(', ') || 'no file'}`);
    }
    const unknown = [...calls.keys()].filter((c) => !(c in COMMANDS));
    assert.deepStrictEqual(unknown, []);
  });
});
