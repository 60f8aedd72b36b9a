// The recipes `tessera train` knows, by name.
import type { Recipe } from '../recipe.js';
import { mnistMlpRecipe } from './mnist.js';

export const recipes: Record<string, Recipe> = {
  [mnistMlpRecipe.name]: mnistMlpRecipe,
};
