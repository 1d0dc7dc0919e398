import type { FaultKit, FaultMenu } from './fault-kit';
import type { Recipe } from './recipes';

/** Fault kinds this file adds (schedule.ts draws them like any other). */
export const HOLE_FAULT_KINDS: string[] = [];

export const HOLE_RECIPES: Recipe[] = [];

export function holeFaults(_f: FaultKit): FaultMenu {
  return [];
}
