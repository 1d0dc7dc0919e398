import type { Swarm, WorldConfig } from './world';
import { RACE_FAULT_KINDS, RACE_RECIPES } from './faults-races';
import { HOLE_FAULT_KINDS, HOLE_RECIPES } from './faults-holes';

/**
 * A targeted fault mix: the fault kinds (and any world settings) a known bug
 * needs to show, drawn by the swarm for a share of the seeds. A broad mix
 * dilutes a bug that needs, say, a gate kill while an NFS server hangs and
 * the host moves on; a recipe is that combination, struck again and again,
 * with the rest still drawn from the seed. Recipes are weather, not
 * answers: they never name a mutant to the world, and a recipe run without
 * any mutant must find nothing.
 */
export interface Recipe {
  name: string;
  /** Which known bugs it was written to reach (documentation; the world never sees it). */
  reaches: string[];
  /** The fault kinds it strikes with (schedule.ts menus). */
  kinds: string[];
  /** World settings it needs (e.g. a fence that fails, no fence agent). */
  world?: Partial<Pick<WorldConfig, 'mode' | 'scvms' | 'fenceAgent' | 'maxClientsPerSession' | 'limitAfterRestart' | 'lateMgmtRegistration' | 'lateServer' | 'fence'>>;
  /** Swarm settings it needs (e.g. a long NFS tail, deep clients). */
  swarm?: Partial<Swarm>;
  /**
   * How often the swarm draws it, relative to the others (1 unless said):
   * more for a mix that reaches its bug in few of its seeds, so a random
   * search still finds that bug within CI's budget.
   */
  weight?: number;
}

export const RECIPES: Recipe[] = [...RACE_RECIPES, ...HOLE_RECIPES];

/** Fault kinds the recipe files add to the menu (they may also be drawn outside a recipe). */
export const RECIPE_FAULT_KINDS: string[] = [...RACE_FAULT_KINDS, ...HOLE_FAULT_KINDS];

/** The recipe at `u` (uniform in [0, 1)) of the recipes laid end to end, each as long as its weight. */
export function recipeAt(u: number): Recipe {
  const total = RECIPES.reduce((sum, x) => sum + (x.weight ?? 1), 0);
  let at = u * total;
  for (const x of RECIPES) {
    at -= x.weight ?? 1;
    if (at < 0) return x;
  }
  return RECIPES[RECIPES.length - 1];
}

export function recipeNamed(name: string): Recipe {
  const r = RECIPES.find((x) => x.name === name);
  if (!r) throw new Error(`unknown recipe ${JSON.stringify(name)}; known: ${RECIPES.map((x) => x.name).join(', ') || '(none)'}`);
  return r;
}
