import { z } from 'zod';
import { ConfigError } from '../errors';
import { parseOrThrow } from '../config/parse';
import { ALGORITHMS, DECAY_MODES, DECOUPLED_ALGORITHMS, type Algorithm, type DecayMode } from './types';

const unit = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .min(0, `${what} must be in [0, 1)`)
    .lt(1, `${what} must be in [0, 1)`);
export const nonNegative = (what: string) => z.number({ error: `${what} must be a number` }).min(0, `${what} must be >= 0`);

/**
 * `optimizer:` section of a job. Defaults reproduce the classic layer-wise fine-tuning
 * recipe: SGD with momentum 0.9 and weight decay 5e-4 (which grouping applies to kernels only). Compose it into a parent schema with
 * `.prefault({})` (zod 4's `.default({})` would skip these inner defaults).
 */
export const optimizerSchema = z
  .object({
    algorithm: z
      .enum(ALGORITHMS, { error: (iss) => `unknown algorithm ${JSON.stringify(iss.input)}; expected one of ${ALGORITHMS.join(', ')}` })
      .default('momentum'),
    /**
     * Momentum of momentum/nesterov/momentumw/lars (default 0.9) and rmsprop (default 0, as PyTorch).
     * Left out here so that rmsprop can get its own default; `resolveOptimizer` fills it in.
     */
    momentum: unit('momentum').optional(),
    dampening: unit('dampening').default(0),
    /** Base weight decay; grouping scales it per role (kernels ×1, biases and norm ×0 by default). */
    weightDecay: nonNegative('weightDecay').default(5e-4),
    /** Default: `decoupled` for adamw/sgdw/momentumw, `coupled` (L2 in the gradient) otherwise. */
    decayMode: z.enum(DECAY_MODES, { error: `decayMode must be one of ${DECAY_MODES.join(', ')}` }).optional(),
    betas: z.tuple([unit('betas[0]'), unit('betas[1]')]).default([0.9, 0.999]),
    eps: z.number().gt(0, 'eps must be > 0').default(1e-8),
    /** rmsprop smoothing constant. */
    alpha: unit('alpha').default(0.99),
    centered: z.boolean().default(false),
    /** LARS η. */
    trustCoefficient: nonNegative('trustCoefficient').default(0.001),
  })
  .strict();

export type OptimizerInput = z.input<typeof optimizerSchema>;
export type OptimizerConfig = z.infer<typeof optimizerSchema>;

/** Optimizer config with the algorithm-dependent defaults settled. */
export interface ResolvedOptimizer extends Omit<OptimizerConfig, 'momentum' | 'decayMode'> {
  algorithm: Algorithm;
  momentum: number;
  decayMode: DecayMode;
}

/** Parses (throwing ConfigError under `optimizer.`) and fills algorithm-dependent defaults. */
export function resolveOptimizer(input: OptimizerInput | undefined, prefix = 'optimizer'): ResolvedOptimizer {
  const cfg = parseOrThrow(optimizerSchema, input ?? {}, prefix);
  const decoupled = DECOUPLED_ALGORITHMS.has(cfg.algorithm);
  if (cfg.decayMode !== undefined) checkDecayModeFits(cfg.algorithm, cfg.decayMode, `${prefix}.decayMode`);
  const momentum = cfg.momentum ?? (cfg.algorithm === 'rmsprop' ? 0 : 0.9);
  if (cfg.algorithm === 'nesterov' && momentum === 0) {
    throw new ConfigError(`${prefix}.momentum`, 'nesterov needs momentum > 0');
  }
  return { ...cfg, momentum, decayMode: cfg.decayMode ?? (decoupled ? 'decoupled' : 'coupled') };
}

/** adamw/sgdw/momentumw are decoupled by definition: another mode for them is a contradiction, not a choice. */
export function checkDecayModeFits(algorithm: Algorithm, mode: DecayMode, path: string): void {
  if (DECOUPLED_ALGORITHMS.has(algorithm) && mode !== 'decoupled') {
    throw new ConfigError(path, `"${mode}" contradicts ${algorithm}, whose decay is decoupled by definition`);
  }
}

export { parseOrThrow } from '../config/parse';
