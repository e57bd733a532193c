/** Release files for the Git source's tests: a replica-ratio canary of payments/<name> to an image tag. */
export function releaseYaml(name: string, tag: string, registry = 'registry.local:5000'): string {
  return `apiVersion: glidepath.dev/v1alpha1
kind: Release
metadata:
  name: ${name}
  namespace: payments
spec:
  workloadRef: { kind: Deployment, name: ${name} }
  image: ${registry}/${name}:${tag}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: { duration: 1s }
        - setWeight: 100
`;
}
