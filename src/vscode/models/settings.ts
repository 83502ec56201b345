import * as os from 'os';
import * as path from 'path';
import type { CustomModel } from '../../core/models/catalog/catalog';
import { KV_CACHE_TYPES, KvCacheType } from '../../core/models/planner/kvCache';
import type { ModelsConfig } from '../../core/models/switcher';
import { strataCacheDir } from '../../core/paths';
import { strataSettings } from '../workspaceTrust';

// `strata.models.*` as one plain object for the core.

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') || p.startsWith('~\\') ? path.join(os.homedir(), p.slice(1)) : p;
}

export function readModelsConfig(): ModelsConfig {
  const c = strataSettings('strata.models');
  const dirs = c.get<unknown>('directories', []);
  const custom = c.get<unknown>('custom', []);
  const kv = c.get<string>('kvCacheType', 'auto');
  const bw = c.get<number>('memoryBandwidthGBps', 0);
  const dl = c.get<string>('downloadDirectory', '').trim();
  return {
    directories: Array.isArray(dirs) ? dirs.filter((d): d is string => typeof d === 'string' && !!d.trim()).map((d) => path.resolve(expandHome(d.trim()))) : [],
    downloadDir: dl ? path.resolve(expandHome(dl)) : path.join(strataCacheDir(), 'models'),
    custom: Array.isArray(custom)
      ? custom.filter(
          (x): x is CustomModel => !!x && typeof x === 'object' && typeof (x as CustomModel).repo === 'string' && typeof (x as CustomModel).file === 'string',
        )
      : [],
    contextSize: Math.max(0, Math.floor(c.get<number>('contextSize', 0) || 0)),
    kvCacheType: kv === 'auto' || (KV_CACHE_TYPES as readonly string[]).includes(kv) ? (kv as KvCacheType | 'auto') : 'auto',
    slots: Math.max(0, Math.floor(c.get<number>('slots', 0) || 0)),
    hubEndpoint: c.get<string>('hubEndpoint', '').trim() || undefined,
    bandwidthGBps: bw > 0 ? bw : undefined,
    scanCaches: c.get<boolean>('scanCaches', true),
  };
}

/** The planner is on unless the user turned it off (then `strata.server.*` decide the flags). */
export function plannerEnabled(): boolean {
  return strataSettings('strata.models').get<boolean>('planner', true);
}
