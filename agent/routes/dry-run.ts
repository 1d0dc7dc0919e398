import type { Route } from '../decision';
import { LOCAL } from '../decision';
import type { RouteBackend } from './backend';

/** Changes nothing: remembers the route it was told to set, for trying the agent out. */
export class DryRunBackend implements RouteBackend {
  readonly name = 'dry-run';
  route: Route = LOCAL;

  async read(): Promise<Route> {
    return this.route;
  }

  async apply(target: Route): Promise<void> {
    this.route = target;
  }
}
