/** `--name value` lookup for the small scripts of the rig, the benchmarks and the tests. */
export function argValue(name: string, fallback: string, argv: string[] = process.argv): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
}
