import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// The project root is the nearest folder above this file with a package.json; this works both
// from src/ (tests) and from dist/src/ (npm start).
function findRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
  return dir
}

export const ROOT = findRoot()
export const VIEWS_DIR = join(ROOT, 'views')
export const PUBLIC_DIR = join(ROOT, 'public')
