/**
 * Base schedules as pure shapes g(t) relative to the peak rate: g(0) = 1 for every type except one-cycle,
 * which starts at 1/divFactor and climbs to the peak itself.
 * Closed forms throughout (no recursion on the previous rate), so any step can be evaluated on its own,
 * which is what exact resume and `plan` need.
 */
import { ConfigError } from '../errors';
import { oneCycleAt } from './one-cycle';
import type { BaseScheduleConfig } from './schema';

export type TimeUnit = 'epoch' | 'step';

export interface BaseShape {
  /** Which counter the shape reads. */
  per: TimeUnit;
  /** Multiplier relative to the peak at time t (t in `per` units, from 0). */
  at(t: number): number;
}

/** The run's length in both units, for defaults such as cosine tMax and poly maxSteps. */
export interface Horizon {
  epochs: number;
  totalSteps: number;
}

/**
 * Build the shape for one base schedule. `peak` is the absolute peak rate on the reference scale, needed only
 * to turn an absolute `minLr` into a fraction of the peak. `path` prefixes ConfigError field paths.
 */
export function baseShape(cfg: BaseScheduleConfig, horizon: Horizon, peak: number, path = 'schedule'): BaseShape {
  if (cfg.type === 'constant') return { per: 'epoch', at: () => 1 };
  if (cfg.type === 'onecycle') {
    const total = cfg.totalSteps ?? horizon.totalSteps;
    if (total < 2) throw new ConfigError(`${path}.totalSteps`, `a one-cycle schedule needs at least 2 steps, got ${total}`);
    // held at the final rate past the cycle, where PyTorch would raise
    return { per: 'step', at: (t) => oneCycleAt(cfg, total, Math.min(t, total - 1)).lr };
  }
  const per = cfg.per;
  const length = per === 'epoch' ? horizon.epochs : horizon.totalSteps;
  switch (cfg.type) {
    case 'step': {
      const { stepSize, gamma } = cfg;
      return { per, at: (t) => gamma ** Math.floor(t / stepSize) };
    }
    case 'multistep': {
      const { milestones, gamma } = cfg;
      return {
        per,
        at: (t) => {
          let passed = 0;
          while (passed < milestones.length && milestones[passed] <= t) passed++;
          return gamma ** passed;
        },
      };
    }
    case 'exponential': {
      if (cfg.decayRate !== undefined) {
        const rate = cfg.decayRate;
        return { per, at: (t) => rate ** t };
      }
      const k = cfg.k as number;
      return { per, at: (t) => Math.exp(-k * t) };
    }
    case 'inverseTime': {
      const { k } = cfg;
      return { per, at: (t) => 1 / (1 + k * t) };
    }
    case 'inv': {
      const { gamma, power } = cfg;
      return { per, at: (t) => (1 + gamma * t) ** -power };
    }
    case 'poly': {
      const maxSteps = cfg.maxSteps ?? length;
      const { power } = cfg;
      return { per, at: (t) => (t >= maxSteps ? 0 : (1 - t / maxSteps) ** power) };
    }
    case 'cosine': {
      const tMax = cfg.tMax ?? length;
      if (cfg.minLr > peak) {
        throw new ConfigError(`${path}.minLr`, `${cfg.minLr} is above the peak rate ${peak}`);
      }
      const floor = cfg.minLr / peak;
      // Held at the floor after tMax rather than rising again as PyTorch's periodic closed form would.
      return {
        per,
        at: (t) => (t >= tMax ? floor : floor + ((1 - floor) * (1 + Math.cos((Math.PI * t) / tMax))) / 2),
      };
    }
  }
}
