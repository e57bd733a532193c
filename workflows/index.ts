/** Workflow entry point for the worker bundle. */
export { release } from './release.ts';
export { apiVersions } from './api-version.ts';
export { releaseGroup } from './group.ts';
export { gitSource } from './git-source.ts';
export { driftWatch } from './drift.ts';
