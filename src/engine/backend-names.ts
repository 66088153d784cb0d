/** The backend names a job may ask for, apart from the selection code so that the config schema stays free of tfjs. */
export const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
