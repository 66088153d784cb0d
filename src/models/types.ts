import type * as tf from '@tensorflow/tfjs';

/** How raw 8-bit RGB pixels become network input. */
export type Preprocess =
  | { kind: 'scale'; low: number; high: number } // x/255 * (high-low) + low  (MobileNet: [-1,1]; TF-Hub: [0,1])
  | { kind: 'normalize'; mean: [number, number, number]; std: [number, number, number] }; // torchvision: (x/255-mean)/std

/**
 * A stage is a contiguous run of layers whose last layer's output is the only tensor that
 * flows on to the next stage. Stages are the unit that grouping splits front to back, and
 * the cut points at which frozen prefixes can be cached.
 */
export interface StageDef {
  name: string;
  /** Name of the layer whose (single) output ends this stage. */
  endLayer: string;
}

/** A pretrained feature extractor: image in, feature map (NHWC) out. */
export interface Backbone {
  /** e.g. 'mobilenet_v1_0.25', 'mobilenet_v2_1.0', 'resnet18' */
  arch: string;
  /** Functional model: input [null,H,W,3] → feature map [null,h,w,C]. */
  model: tf.LayersModel;
  stages: StageDef[];
  preprocess: Preprocess;
  inputSize: number;
  /** Where the weights came from, for metadata and error messages. */
  source: string;
  /**
   * Set when the backbone cannot be fine-tuned, only head-trained (a tfjs GraphModel): the reason, for
   * error messages. Its model then has no trainable weights and outputs a pooled embedding [N, C].
   */
  headOnly?: string;
}
