import { expect } from 'chai';
import { blasSummaryOf, cpuModelOf, headerLines, threadEnvOf, type HeaderInput } from '../../scripts/bench/header';

describe('bench header', () => {
  it('reads the CPU model from /proc/cpuinfo text, the BLAS from torch.__config__.show(), the thread variables from the env', () => {
    expect(cpuModelOf('processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n')).to.equal('AMD EPYC 7B13');
    expect(cpuModelOf('processor : 0\n')).to.equal(null);
    // the shape of Debian's torch 1.13 output: one long "Build settings" line, MKL absent
    const show = 'PyTorch built with:\n  - GCC 12.2\n  - Build settings: BLAS_INFO=generic, BUILD_TYPE=RelWithDebInfo, LAPACK_INFO=generic, USE_CUDA=OFF\n';
    expect(blasSummaryOf(show)).to.equal('BLAS_INFO=generic, LAPACK_INFO=generic');
    expect(blasSummaryOf('PyTorch built with:\n')).to.equal('BLAS_INFO not reported');
    expect(threadEnvOf({ PATH: '/bin', OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '1', HOME: '/root' })).to.deep.equal({
      OMP_NUM_THREADS: '2',
      OPENBLAS_NUM_THREADS: '1',
    });
  });

  const base: HeaderInput = {
    layertune: 'backends wasm/wasm:2',
    peerThreads: 2,
    peer: { torch: '1.13.0', blas: 'BLAS_INFO=generic', libblas: '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3', defaultThreads: 1 },
    cpuModel: 'AMD EPYC',
    cores: 2,
    load: [1.5, 1, 0.5],
    node: 'v20.20.2',
    kernels: 'fma',
    env: {},
  };

  it('names CPU, cores, load, node, kernels, layertune setup and the peer, and warns only when the load exceeds the cores', () => {
    expect(headerLines(base)).to.deep.equal([
      '# cpu: AMD EPYC, 2 core(s)',
      '# load at start (1/5/15 min): 1.50 1.00 0.50',
      '# node v20.20.2, wasm kernels fma',
      '# layertune: backends wasm/wasm:2',
      '# peer: torch 1.13.0, BLAS_INFO=generic, libblas /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3, threads 2 (torch default 1)',
      '# peer env: no OPENBLAS_*/OMP_*/MKL_* set',
    ]);
    const loaded = headerLines({ ...base, load: [2.01, 1, 1], env: { OMP_NUM_THREADS: '2' } });
    expect(loaded[5]).to.equal('# peer env: OMP_NUM_THREADS=2');
    expect(loaded[6]).to.equal("# warning: load 2.01 exceeds the 2 core(s): these timings are not comparable with a quiet machine's");
    // at exactly the core count: no warning
    expect(headerLines({ ...base, load: [2, 2, 2] })).to.have.length(6);
  });
});
