// The recipes `tessera train` knows, by name.
import type { Recipe } from '../recipe.js';
import { fashionCnnRecipe, mnistCnnRecipe, mnistMlpRecipe, moeMlpRecipe } from './mnist.js';
import { charGptRecipe, charLstmRecipe } from './text.js';

export const recipes: Record<string, Recipe> = {
  [mnistMlpRecipe.name]: mnistMlpRecipe,
  [mnistCnnRecipe.name]: mnistCnnRecipe,
  [fashionCnnRecipe.name]: fashionCnnRecipe,
  [charGptRecipe.name]: charGptRecipe,
  [charLstmRecipe.name]: charLstmRecipe,
  [moeMlpRecipe.name]: moeMlpRecipe,
};
