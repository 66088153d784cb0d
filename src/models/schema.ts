import { z } from 'zod';
import { KNOWN_ARCHS } from './arch/names';

/**
 * Where the backbone comes from. `source` is a tfjs model folder / model.json (a LayersModel, or a
 * GraphModel for head-only training), a `.safetensors` (torchvision or timm names), a Keras `.h5`, any of
 * these as a `file://` or `http(s)://` URL (downloaded once into the user cache), or `arch:NAME` for
 * random initialisation.
 */
export const modelSourceSchema = z
  .object({
    source: z.string().min(1).default('models/mobilenet_v1_0.25_224'),
    /** Force the architecture of a .safetensors/.h5 file instead of inferring it from tensor names. */
    arch: z.enum(KNOWN_ARCHS as [string, ...string[]]).optional(),
    /** Square input side; default the model's own. */
    size: z.number().int().min(32).max(1024).optional(),
  })
  .strict();

export type ModelSourceConfig = z.infer<typeof modelSourceSchema>;
