import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * The package root's exact export list, values and types alike. A name added to src/index.ts without
 * being added here (or dropped from it) fails, so nothing internal becomes public by accident. One name
 * per line, in the same areas as src/index.ts, so parallel additions merge cleanly.
 */
// biome-ignore format: one name per line, so that names added in parallel branches merge cleanly
const EXPECTED: Record<string, string[]> = {
  'Jobs': [
    'runJob',
    'buildPlan',
    'JobSchema',
    'prepare',
    'readJobFile',
    'resolveJob',
    'FitResult',
    'Job',
    'JobInput',
    'JobPlan',
    'JobResult',
    'LayerPlan',
    'LrPoints',
    'Prepared',
    'RunOptions',
    'VariablePlan',
  ],
  'Pipeline stages': [
    'CALLBACK_ORDER',
    'CancelBatch',
    'CancelEpoch',
    'CancelFit',
    'CancelStep',
    'createContainer',
    'ImageFolderSource',
    'inCallbackOrder',
    'LayersModelExporter',
    'LoopTrainerFactory',
    'ParamScheduler',
    'TOKENS',
    'BackendProvider',
    'BackwardInfo',
    'BatchBeginInfo',
    'BatchEndInfo',
    'BatchInfo',
    'Callback',
    'CancelInfo',
    'DataSource',
    'DataSourceFactory',
    'EpochInfo',
    'Example',
    'FitBeginInfo',
    'FitEndInfo',
    'Exporter',
    'Grouper',
    'ModelSource',
    'OptimizerFactory',
    'ReporterFactory',
    'ScheduleFactory',
    'Stages',
    'Stateful',
    'StepControl',
    'TrainerFactory',
    'TrainerInputs',
    'TrainerParts',
  ],
  'Backends': [
    'selectBackend',
    'BackendChoice',
  ],
  'Models': [
    'attachHead',
    'formatInspection',
    'inspectBackbone',
    'KNOWN_ARCHS',
    'loadBackbone',
    'Backbone',
    'Inspection',
    'LoadBackboneOptions',
    'LoadedBackbone',
    'Network',
    'Preprocess',
    'StageDef',
  ],
  'Using an export': [
    'evaluateFolder',
    'loadClassifier',
    'loadExport',
    'predictFiles',
    'classifyFiles',
    'inferFiles',
    'InferenceOptions',
    'InferenceSummary',
    'InferencePool',
    'Classifier',
    'Evaluation',
    'ExportMetadata',
    'Prediction',
  ],
  'Layer groups and the grouped optimizer': [
    'ALGORITHMS',
    'DECAY_MODES',
    'geometricRates',
    'GroupedOptimizer',
    'layerDecayRates',
    'planGroups',
    'steppedRates',
    'Algorithm',
    'DecayMode',
    'GroupedOptimizerOptions',
    'GroupingInput',
    'GroupPlan',
    'LayerInfo',
    'OptimizerInput',
    'ParamGroup',
  ],
  'Learning-rate schedules, plateau and early stopping': [
    'EarlyStopping',
    'formatLrPlan',
    'lrPlan',
    'LrSchedule',
    'LrScheduleSchema',
    'ReduceOnPlateau',
    'resolveSchedule',
    'EarlyStoppingInput',
    'LrPlan',
    'LrScheduleConfig',
    'LrScheduleInput',
    'PlateauInput',
    'ResolvedSchedule',
    'RunShape',
  ],
  'Tuning': [
    'formatLrFind',
    'formatSearch',
    'lrFind',
    'lrWdWarnings',
    'search',
    'wdAuto',
    'LrFindInput',
    'LrFindResult',
    'RuleWarning',
    'SearchInput',
    'SearchOptions',
    'SearchResult',
    'TrialRecord',
    'WdAutoResult',
  ],
  'Reports': [
    'writeReport',
    'RunMetrics',
  ],
  'Errors': [
    'ConfigError',
    'DataError',
    'ModelFormatError',
    'TrainingError',
    'UserError',
  ],
};

const ROOT = path.join(__dirname, '..', '..');
const INDEX = path.join(ROOT, 'src', 'index.ts');

/** The ```ts blocks of the README's "## API" section, each a module importing from 'layertune'. */
function readmeExamples(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## API$/m)[1]?.split(/^## /m)[0] ?? '';
  return [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

/**
 * One program for both checks (type-checking src/ is the slow part): src/index.ts plus every README
 * example, with 'layertune' mapped to src/index.ts. ES modules, so the examples may use top-level await.
 */
function compile(examples: string[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-readme-api-'));
  const files = examples.map((code, i) => {
    const f = path.join(dir, `example-${i + 1}.ts`);
    fs.writeFileSync(f, `${code}\nexport {};\n`);
    return f;
  });
  const program = ts.createProgram([INDEX, ...files], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    experimentalDecorators: true,
    noEmit: true,
    types: ['node'],
    typeRoots: [path.join(ROOT, 'node_modules', '@types')],
    paths: { layertune: [INDEX], 'h5wasm-types': [path.join(ROOT, 'node_modules', 'h5wasm', 'src', 'hdf5_hl.d.ts')] },
  });
  const errors = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && files.includes(d.file.fileName))
    .map((d) => `${path.basename(d.file?.fileName ?? '')}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(INDEX);
  const mod = source && checker.getSymbolAtLocation(source);
  if (!mod) throw new Error('src/index.ts did not load');
  // every example file must be in the program, or a typo in its path would pass silently
  for (const f of files) if (!program.getSourceFile(f)) throw new Error(`${f} not compiled`);
  fs.rmSync(dir, { recursive: true, force: true });
  return { names: checker.getExportsOfModule(mod).map((s) => s.getName()), errors };
}

describe('the public API (package root)', function () {
  this.timeout(120000);
  const examples = readmeExamples();
  let compiled: { names: string[]; errors: string[] };
  before(() => {
    compiled = compile(examples);
  });

  it('exports exactly the listed names', () => {
    const expected = Object.values(EXPECTED).flat();
    expect(new Set(expected).size, 'a name listed twice').to.equal(expected.length);
    expect([...compiled.names].sort()).to.deep.equal([...expected].sort());
  });

  it('keeps internals out', () => {
    for (const internal of ['nudge', 'stepsPerEpochOf', 'fitBatch', 'saveCheckpoint', 'Trainer', 'zodToConfigError']) {
      expect(compiled.names, internal).not.to.include(internal);
    }
  });

  it("the README's API examples type-check against it, one per area", () => {
    expect(examples.length).to.be.at.least(7);
    expect(compiled.errors).to.deep.equal([]);
  });

  it('a wrong example would fail that check', () => {
    const { errors } = compile(["import { runJob } from 'layertune';\nawait runJob({ train: { epoch: 1 } });"]);
    expect(errors.join('\n')).to.match(/epoch/);
  });

  it('the compiled root (dist/index.js) carries only listed runtime values', () => {
    const dist = require(path.join(ROOT, 'dist', 'index.js'));
    const values = Object.keys(dist).filter((k) => k !== '__esModule');
    const expected = Object.values(EXPECTED).flat();
    expect(values.filter((v) => !expected.includes(v))).to.deep.equal([]);
    expect(typeof dist.runJob).to.equal('function');
    expect(typeof dist.TOKENS.Callback).to.equal('symbol');
  });
});
