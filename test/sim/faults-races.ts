import type { FaultKit, FaultMenu } from './fault-kit';
import type { Recipe } from './recipes';

/** Fault kinds this file adds (schedule.ts draws them like any other). */
export const RACE_FAULT_KINDS: string[] = [];

export const RACE_RECIPES: Recipe[] = [];

export function raceFaults(_f: FaultKit): FaultMenu {
  return [];
}
