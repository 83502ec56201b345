import * as assert from 'assert';
import { strataCacheDir, strataStateDir } from '../../src/core/paths';
import { skipBecause } from '../harness/skips';

describe('paths', () => {
  it('honours STRATA_CACHE_DIR and STRATA_STATE_DIR', () => {
    assert.strictEqual(strataCacheDir({ STRATA_CACHE_DIR: '/x/cache' }), '/x/cache');
    assert.strictEqual(strataStateDir({ STRATA_STATE_DIR: '/x/state' }), '/x/state');
  });
  it('follows XDG on Linux', function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: XDG directories');
    assert.strictEqual(strataCacheDir({ XDG_CACHE_HOME: '/c' }), '/c/strata');
    assert.strictEqual(strataStateDir({ XDG_STATE_HOME: '/s' }), '/s/strata');
  });
});
