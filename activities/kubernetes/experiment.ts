/**
 * The workloads of an experiment step: one Deployment per template, `<workload>-exp-<template>`, made
 * from the stable's pod template (specRef stable: as it runs now; specRef canary: with the release's
 * image, as the canary runs), applied by server-side apply, waited for, and deleted when the step ends
 * or the release stops (idempotent, verified by read-back).
 *
 * Labels. Argo's experiment ReplicaSets keep every label of the template they copy, so a Service of the
 * user's that selects the workload (`app: web`) has their pods as endpoints; so do these. They also carry
 * `rollouts.glidepath.dev/role: experiment` and `rollouts.glidepath.dev/experiment: <template>`, and
 * their Deployment selects by them, so the canary Deployment, the canary Service (which selects the
 * canary's role label) and a stableService (pinned to the stable's current ReplicaSet's
 * pod-template-hash while a release runs) never reach them. A template's `metadata.labels` and
 * `selector.matchLabels` are added to its pods and its selector, as Argo adds them.
 *
 * Services. A template with `service` or `weight` gets a Service, as Argo creates one for either:
 * named `service.name` or the template's Deployment name, selecting exactly that Deployment's pods (its
 * selector), with a port per container port (as Argo's; unnamed ones named `<protocol>-<port>` when
 * there are several, which Kubernetes requires); applied by server-side apply with the
 * experiment's labels, and deleted (verified) with the Deployments. The traffic router points the
 * template's weight at it (activities/experiment.ts).
 */
import { PatchStrategy, type V1Deployment, type V1ReplicaSet, type V1Service, type V1ServicePort } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { needsService, type ExperimentTemplate, type RunningTemplate } from '../../model/experiment.ts';
import type { ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { createDeployments, MERGE_PATCH } from './deployments.ts';
import { isNotFound } from './errors.ts';
import { ANNOTATIONS, FIELD_MANAGER, LABELS, MANAGED_BY, buildRoleDeployment, targetContainer, workloadLabelValue } from './objects.ts';
import type { WorkloadRoom } from './room.ts';

export const EXPERIMENT_LABEL = 'rollouts.glidepath.dev/experiment';
export const EXPERIMENT_ROLE = 'experiment';
/** On an experiment Deployment: the canary step (0-based) that started it. */
export const EXPERIMENT_STEP_ANNOTATION = 'glidepath.dev/experiment-step';

export interface ExperimentOps {
  /** Every template's Deployment applied and rolled out (others of an earlier step removed first); what each runs. */
  startExperiment(target: ReleaseTarget, step: number, templates: ExperimentTemplate[]): Promise<RunningTemplate[]>;
  /** Every experiment Service and Deployment of the workload deleted, verified gone; returns their names. Absent is fine. */
  removeExperiment(target: ReleaseTarget): Promise<{ removed: string[] }>;
}

export function experimentName(workload: string, template: string): string {
  return `${workload}-exp-${template}`;
}

/** The labels every experiment Deployment of the workload carries (the selector of removeExperiment). */
function experimentLabels(target: ReleaseTarget): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: EXPERIMENT_ROLE, [LABELS.workload]: workloadLabelValue(target.workload.name) };
}

const selectorText = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** A template's Deployment for server-side apply: the stable's pod template, the spec ref's image, the experiment's labels. */
export function buildExperimentDeployment(stable: V1Deployment, target: ReleaseTarget, step: number, t: ExperimentTemplate): V1Deployment {
  const image = t.specRef === 'canary' ? target.image : targetContainer(stable, target).image;
  if (!image) throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${target.workload.name}: container has no image`, ErrorType.PreflightFailed);
  const base = buildRoleDeployment(stable, { ...target, image }, 'canary', t.replicas);
  const own = { [LABELS.role]: EXPERIMENT_ROLE, [LABELS.workload]: workloadLabelValue(target.workload.name), [EXPERIMENT_LABEL]: t.name };
  const selector = { ...(stable.spec?.selector?.matchLabels ?? {}), ...(t.selector ?? {}), ...(t.labels ?? {}), ...own };
  const podLabels = { ...(stable.spec?.template?.metadata?.labels ?? {}), ...(t.selector ?? {}), ...(t.labels ?? {}), ...own };
  const spec = base.spec as NonNullable<V1Deployment['spec']>;
  const annotations = { ...(spec.template.metadata?.annotations ?? {}), ...(t.annotations ?? {}) };
  return {
    ...base,
    metadata: {
      name: experimentName(target.workload.name, t.name),
      namespace: target.namespace,
      labels: { ...experimentLabels(target), [EXPERIMENT_LABEL]: t.name },
      annotations: { [ANNOTATIONS.release]: target.releaseId, [ANNOTATIONS.image]: image, [ANNOTATIONS.stable]: target.workload.name, [EXPERIMENT_STEP_ANNOTATION]: String(step) },
    },
    spec: {
      ...spec,
      selector: { matchLabels: selector },
      template: { ...spec.template, metadata: { labels: podLabels, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) } },
    },
  };
}

/** The Service a template gets (`service.name`, else its Deployment's name). */
export function experimentServiceName(workload: string, t: Pick<ExperimentTemplate, 'name' | 'service'>): string {
  return t.service?.name ?? experimentName(workload, t.name);
}

/** A template's Service for server-side apply: its Deployment's pods (the Deployment's selector), a port per container port. */
export function buildExperimentService(deployment: V1Deployment, target: ReleaseTarget, t: ExperimentTemplate): V1Service {
  const name = experimentServiceName(target.workload.name, t);
  const declared = (deployment.spec?.template?.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => ({ name: p.name, protocol: p.protocol ?? 'TCP', port: p.containerPort })));
  const unique = declared.filter((p, i) => declared.findIndex((q) => q.port === p.port && q.protocol === p.protocol) === i);
  // A Service with more than one port needs each named: an unnamed container port is named by its protocol and number.
  const ports: V1ServicePort[] = unique.map((p) => ({
    ...(p.name ? { name: p.name } : unique.length > 1 ? { name: `${p.protocol.toLowerCase()}-${p.port}` } : {}),
    protocol: p.protocol,
    port: p.port,
    targetPort: p.port,
  }));
  if (ports.length === 0) {
    throw ApplicationFailure.nonRetryable(`experiment template "${t.name}": its Service ${target.namespace}/${name} needs a port, and the pod template's containers declare none (containers[].ports)`, ErrorType.InvalidSpec);
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: target.namespace, labels: { ...experimentLabels(target), [EXPERIMENT_LABEL]: t.name }, annotations: { [ANNOTATIONS.release]: target.releaseId } },
    spec: { selector: { ...(deployment.spec?.selector?.matchLabels ?? {}) }, ports },
  };
}

export function createExperimentOps(room: WorkloadRoom): ExperimentOps {
  const { k } = room;
  const d = createDeployments(room);

  const list = async (target: ReleaseTarget): Promise<V1Deployment[]> =>
    (await k.call({ verb: 'list', resource: 'deployments.apps', namespace: target.namespace }, () => k.apps.listNamespacedDeployment({ namespace: target.namespace, labelSelector: selectorText(experimentLabels(target)) }))).items;

  /** Scaled to zero (its pods go at once), then deleted; absent is fine. */
  const remove = async (target: ReleaseTarget, dep: V1Deployment): Promise<void> => {
    const name = dep.metadata?.name as string;
    const site = { namespace: target.namespace, name, resource: 'deployments.apps' };
    try {
      if ((dep.spec?.replicas ?? 1) > 0 && !dep.metadata?.deletionTimestamp) {
        await k.call({ ...site, verb: 'patch' }, () => k.apps.patchNamespacedDeployment({ name, namespace: target.namespace, body: { spec: { replicas: 0 } }, fieldManager: FIELD_MANAGER }, MERGE_PATCH));
      }
      await k.call({ ...site, verb: 'delete' }, () => k.apps.deleteNamespacedDeployment({ name, namespace: target.namespace, propagationPolicy: 'Background' }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };

  const listServices = async (target: ReleaseTarget): Promise<V1Service[]> =>
    (await k.call({ verb: 'list', resource: 'services', namespace: target.namespace }, () => k.core.listNamespacedService({ namespace: target.namespace, labelSelector: selectorText(experimentLabels(target)) }))).items;

  const removeService = async (target: ReleaseTarget, name: string): Promise<void> => {
    try {
      await k.call({ verb: 'delete', resource: 'services', namespace: target.namespace, name }, () => k.core.deleteNamespacedService({ name, namespace: target.namespace }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };

  /** The template's Service applied (refused when a Service of that name is not Glidepath's) and read back. */
  const applyService = async (target: ReleaseTarget, deployment: V1Deployment, t: ExperimentTemplate): Promise<string> => {
    const desired = buildExperimentService(deployment, target, t);
    const name = desired.metadata?.name as string;
    const site = { resource: 'services', namespace: target.namespace, name };
    let existing: V1Service | undefined;
    try {
      existing = await k.call({ ...site, verb: 'get' }, () => k.core.readNamespacedService({ name, namespace: target.namespace }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (existing && (existing.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY || existing.metadata?.labels?.[LABELS.workload] !== workloadLabelValue(target.workload.name))) {
      throw ApplicationFailure.nonRetryable(`Service ${target.namespace}/${name} exists and is not an experiment Service of ${target.workload.name} managed by glidepath; rename experiment template "${t.name}"'s service.name`, ErrorType.PreflightFailed);
    }
    await k.call({ ...site, verb: 'apply' }, () => k.objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
    const got = await k.call({ ...site, verb: 'get' }, () => k.core.readNamespacedService({ name, namespace: target.namespace }));
    if (JSON.stringify(got.spec?.selector ?? {}) !== JSON.stringify(desired.spec?.selector)) {
      throw ApplicationFailure.nonRetryable(`Service ${target.namespace}/${name} reads back with selector ${JSON.stringify(got.spec?.selector)} (expected ${JSON.stringify(desired.spec?.selector)})`, ErrorType.VerificationFailed);
    }
    return name;
  };

  /** The ReplicaSet of the Deployment's current revision: its pod-template-hash and name. */
  const currentReplicaSet = async (target: ReleaseTarget, dep: V1Deployment): Promise<V1ReplicaSet> => {
    const revision = dep.metadata?.annotations?.['deployment.kubernetes.io/revision'];
    const sets = (await k.call({ verb: 'list', resource: 'replicasets.apps', namespace: target.namespace }, () => k.apps.listNamespacedReplicaSet({ namespace: target.namespace, labelSelector: selectorText(dep.spec?.selector?.matchLabels ?? {}) }))).items;
    const current = sets.find((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === dep.metadata?.uid) && rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] === revision);
    if (!current?.metadata?.labels?.['pod-template-hash']) throw new Error(`Deployment ${target.namespace}/${dep.metadata?.name}: no ReplicaSet of revision ${revision} yet`);
    return current;
  };

  return {
    async startExperiment(target, step, templates) {
      const stable = await d.getStable(target);
      const wanted = new Set(templates.map((t) => experimentName(target.workload.name, t.name)));
      const wantedServices = new Set(templates.filter(needsService).map((t) => experimentServiceName(target.workload.name, t)));
      for (const old of await listServices(target)) if (!wantedServices.has(old.metadata?.name as string)) await removeService(target, old.metadata?.name as string); // an earlier step's
      for (const old of await list(target)) if (!wanted.has(old.metadata?.name as string)) await remove(target, old); // an earlier step's
      const applied: V1Deployment[] = [];
      for (const t of templates) {
        const desired = buildExperimentDeployment(stable, target, step, t);
        const name = desired.metadata?.name as string;
        const existing = await d.findDeployment(target.namespace, name);
        if (existing && existing.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY) {
          throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${name} exists and is not managed by glidepath (label ${LABELS.managedBy}); rename experiment template "${t.name}"`, ErrorType.PreflightFailed);
        }
        await k.call({ verb: 'apply', resource: 'deployments.apps', namespace: target.namespace, name }, () => k.objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
        const got = await d.getDeployment(target.namespace, name);
        const image = got.spec?.template?.spec?.containers?.find((c) => c.name === targetContainer(stable, target).name)?.image;
        const want = desired.metadata?.annotations?.[ANNOTATIONS.image];
        if (got.spec?.replicas !== t.replicas || image !== want || got.spec?.selector?.matchLabels?.[EXPERIMENT_LABEL] !== t.name) {
          throw ApplicationFailure.nonRetryable(`Deployment ${target.namespace}/${name} reads back differently after apply: replicas ${got.spec?.replicas} (expected ${t.replicas}), image ${image} (expected ${want}), selector ${JSON.stringify(got.spec?.selector?.matchLabels)}`, ErrorType.VerificationFailed);
        }
        applied.push(got);
      }
      const services: (string | undefined)[] = [];
      for (const [i, t] of templates.entries()) services.push(needsService(t) ? await applyService(target, applied[i] as V1Deployment, t) : undefined);
      const running: RunningTemplate[] = [];
      for (const [i, t] of templates.entries()) {
        const name = applied[i]?.metadata?.name as string;
        const ready = await d.waitRolledOut(target, name);
        const rs = await currentReplicaSet(target, ready);
        const service = services[i];
        running.push({ name: t.name, workload: name, podTemplateHash: rs.metadata?.labels?.['pod-template-hash'] as string, replicaSet: rs.metadata?.name as string, ...(service ? { service } : {}) });
      }
      return running;
    },

    async removeExperiment(target) {
      const services = await listServices(target);
      for (const svc of services) await removeService(target, svc.metadata?.name as string);
      const found = await list(target);
      for (const dep of found) await remove(target, dep);
      const leftServices = (await listServices(target)).filter((svc) => !svc.metadata?.deletionTimestamp);
      const left = (await list(target)).filter((dep) => !dep.metadata?.deletionTimestamp);
      if (left.length + leftServices.length > 0) throw new Error(`experiment objects still present after delete: ${[...leftServices.map((x) => `Service ${x.metadata?.name}`), ...left.map((dep) => `Deployment ${dep.metadata?.name}`)].join(', ')}`);
      return { removed: [...services.map((svc) => `Service ${svc.metadata?.name as string}`), ...found.map((dep) => dep.metadata?.name as string)] };
    },
  };
}
