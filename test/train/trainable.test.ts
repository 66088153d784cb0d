import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { type FreezePolicy, TrainableVariables } from '../../src/train/loop/trainable';

describe('TrainableVariables: the variables a step differentiates under a freeze policy', () => {
  const vars = () => ({ a: tf.variable(tf.scalar(1)), b: tf.variable(tf.scalar(2)), c: tf.variable(tf.scalar(3)) });
  const twoPhases = (frozen: ReadonlySet<string>, until: number): FreezePolicy => {
    const none: ReadonlySet<string> = new Set();
    return { frozenAt: (step) => (step < until ? frozen : none) };
  };

  it('leaves the frozen names out until the policy lets them go, then gives back every variable', () => {
    const all = vars();
    const t = new TrainableVariables(all, twoPhases(new Set(['a', 'c']), 3));
    const first = t.at(0);
    expect(Object.keys(first)).to.deep.equal(['b']);
    expect(first.b).to.equal(all.b);
    // the same object while the answer holds: the gradient workers key their subset on it
    expect(t.at(2)).to.equal(first);
    expect(t.at(3)).to.equal(all);
    tf.dispose(Object.values(all));
  });

  it('without a policy every step trains everything', () => {
    const all = vars();
    expect(new TrainableVariables(all, null).at(7)).to.equal(all);
    tf.dispose(Object.values(all));
  });

  it('a frozen name that is not one of the variables is a bug, said by name', () => {
    const all = vars();
    const t = new TrainableVariables(all, twoPhases(new Set(['a', 'conv9/kernel']), 3));
    expect(() => t.at(0)).to.throw(/"conv9\/kernel" is not one of the loop's trainable variables/);
    tf.dispose(Object.values(all));
  });
});
