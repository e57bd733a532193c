/**
 * What a job metric's pod may ask for. The Job runs with the worker's rights in the release's
 * namespace, so its pod is held to a restricted shape: no privileged containers, no privilege
 * escalation or added capabilities (but NET_BIND_SERVICE), no host namespaces (network, PID, IPC) or
 * host ports, no hostPath volumes, no ServiceAccount but the namespace's `default`, and no namespace
 * of its own. Pure and workflow-safe: the schema, the workflow's start check and the job activity can
 * all call it.
 */

export interface JobPodProblem {
  /** Path inside the provider's `spec` (`template.spec.hostNetwork`, `template.spec.containers[0].securityContext.privileged` …). */
  path: (string | number)[];
  message: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Obj, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

const ALLOWED_CAPABILITIES = new Set(['NET_BIND_SERVICE']);

function containerProblems(list: unknown, field: string): JobPodProblem[] {
  if (!Array.isArray(list)) return [];
  const out: JobPodProblem[] = [];
  list.forEach((c, i) => {
    if (!isObj(c)) return;
    const at = ['template', 'spec', field, i];
    const sc = own(c, 'securityContext');
    if (isObj(sc)) {
      if (own(sc, 'privileged') === true) out.push({ path: [...at, 'securityContext', 'privileged'], message: 'privileged containers are not allowed in a job metric' });
      if (own(sc, 'allowPrivilegeEscalation') === true) out.push({ path: [...at, 'securityContext', 'allowPrivilegeEscalation'], message: 'privilege escalation is not allowed in a job metric' });
      const caps = own(sc, 'capabilities');
      const add = isObj(caps) ? own(caps, 'add') : undefined;
      if (Array.isArray(add)) {
        const extra = add.filter((a) => !ALLOWED_CAPABILITIES.has(String(a).toUpperCase().replace(/^CAP_/, '')));
        if (extra.length > 0) out.push({ path: [...at, 'securityContext', 'capabilities', 'add'], message: `capabilities ${extra.map(String).join(', ')} are not allowed in a job metric (only NET_BIND_SERVICE)` });
      }
    }
    const ports = own(c, 'ports');
    if (Array.isArray(ports)) {
      ports.forEach((p, j) => {
        if (isObj(p) && own(p, 'hostPort') !== undefined) out.push({ path: [...at, 'ports', j, 'hostPort'], message: 'host ports are not allowed in a job metric' });
      });
    }
  });
  return out;
}

/** Problems with a job provider's `spec` (a batch/v1 JobSpec); empty when its pod is within bounds. */
export function jobPodProblems(jobSpec: unknown): JobPodProblem[] {
  if (!isObj(jobSpec)) return [];
  const template = own(jobSpec, 'template');
  if (!isObj(template)) return [];
  const out: JobPodProblem[] = [];
  const meta = own(template, 'metadata');
  if (isObj(meta) && own(meta, 'namespace') !== undefined) out.push({ path: ['template', 'metadata', 'namespace'], message: "a job metric runs in the release's namespace; remove namespace" });
  const pod = own(template, 'spec');
  if (!isObj(pod)) return out;
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
    if (own(pod, field) === true) out.push({ path: ['template', 'spec', field], message: `${field} (a host namespace) is not allowed in a job metric` });
  }
  for (const field of ['serviceAccountName', 'serviceAccount']) {
    const sa = own(pod, field);
    if (sa !== undefined && sa !== 'default') out.push({ path: ['template', 'spec', field], message: `a job metric runs as the namespace's default ServiceAccount, not "${String(sa)}"` });
  }
  const volumes = own(pod, 'volumes');
  if (Array.isArray(volumes)) {
    volumes.forEach((v, i) => {
      if (isObj(v) && own(v, 'hostPath') !== undefined) out.push({ path: ['template', 'spec', 'volumes', i, 'hostPath'], message: 'hostPath volumes are not allowed in a job metric' });
    });
  }
  const podSc = own(pod, 'securityContext');
  if (isObj(podSc) && isObj(own(podSc, 'windowsOptions')) && own(own(podSc, 'windowsOptions') as Obj, 'hostProcess') === true) {
    out.push({ path: ['template', 'spec', 'securityContext', 'windowsOptions', 'hostProcess'], message: 'host processes are not allowed in a job metric' });
  }
  for (const field of ['containers', 'initContainers', 'ephemeralContainers']) out.push(...containerProblems(own(pod, field), field));
  return out;
}
