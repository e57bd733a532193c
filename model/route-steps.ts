/**
 * Whether the traffic router of a canary can serve its `setHeaderRoute` and `setMirrorRoute` steps,
 * checked at the edge (lint, release start) and again when the workflow starts, so a spec that no
 * router can serve is refused before anything is touched. Argo's rules: such steps need a traffic
 * router, and every route name they set is listed in `trafficRouting.managedRoutes`. Workflow-safe.
 */
import { managedRouteNames, routerCapabilities } from './traffic-routing.ts';

export interface RouteStep {
  kind: 'setHeaderRoute' | 'setMirrorRoute';
  name: string;
  /** Header match value kinds the step uses (`exact`, `prefix`, `regex`). */
  headerValueKinds: string[];
  /** Number of match entries; 0 removes the route. */
  matches: number;
}

export interface RouteStepProblem {
  /** Index of the step in `steps`, or undefined for a problem with the routing block. */
  step?: number;
  message: string;
}

const STEP_FIELD = { setHeaderRoute: 'setHeaderRoute', setMirrorRoute: 'setMirrorRoute' } as const;

export function routeStepProblems(steps: (RouteStep | undefined)[], trafficRouting: Record<string, unknown> | undefined): RouteStepProblem[] {
  const problems: RouteStepProblem[] = [];
  const routing = trafficRouting ? routerCapabilities(trafficRouting) : undefined;
  const managed = managedRouteNames(trafficRouting);
  const headerRoutesInPlace = new Set<string>();
  steps.forEach((step, i) => {
    if (!step) return;
    const field = STEP_FIELD[step.kind];
    if (!trafficRouting) {
      problems.push({ step: i, message: `${field} needs a traffic router (strategy.canary.trafficRouting); a replica-ratio canary cannot route by header or mirror` });
      return;
    }
    if (!managed.includes(step.name)) {
      problems.push({
        step: i,
        message: `${field} "${step.name}" is not listed in trafficRouting.managedRoutes (${managed.length ? managed.map((n) => `"${n}"`).join(', ') : 'none listed'})`,
      });
    }
    if (!routing) return;
    const c = routing.capabilities;
    // Even a removal (no match) is refused when the router has no such routes at all: the step is meaningless there.
    const why = step.kind === 'setHeaderRoute' ? c.headerRoutes(routing.block) : c.mirrorRoutes(routing.block);
    if (why !== undefined) {
      problems.push({ step: i, message: `${field} cannot be served by ${c.label}: ${why}` });
      return;
    }
    if (step.kind === 'setHeaderRoute') {
      if (step.matches === 0) headerRoutesInPlace.delete(step.name);
      else headerRoutesInPlace.add(step.name);
      if (c.maxHeaderMatches !== undefined && step.matches > c.maxHeaderMatches) {
        problems.push({ step: i, message: `${field} "${step.name}" has ${step.matches} matches; ${c.label} can match at most ${c.maxHeaderMatches} header(s) per route` });
      }
      if (c.maxHeaderRoutes !== undefined && headerRoutesInPlace.size > c.maxHeaderRoutes) {
        problems.push({
          step: i,
          message: `${field} "${step.name}": ${c.label} can have at most ${c.maxHeaderRoutes} header route(s) in place at a time, and ${[...headerRoutesInPlace].map((n) => `"${n}"`).join(', ')} would be (remove one first with a setHeaderRoute without match)`,
        });
      }
    }
    for (const kind of step.headerValueKinds) {
      if (!(c.headerValueKinds as readonly string[]).includes(kind)) {
        problems.push({ step: i, message: `${field} "${step.name}": ${c.label} cannot match a header by ${kind} (it can by ${c.headerValueKinds.join(', ')})` });
      }
    }
  });
  return problems;
}
