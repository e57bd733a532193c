/** Kubernetes name rules as plain expressions: workflow-safe, no zod (the field schemas are in model/fields.ts). */

/** A DNS-1123 label (at most 63 characters, checked separately). */
export const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
