/**
 * A config that cannot be used: the message names the key path and what was expected. Apart from
 * config.ts so the CLI's short commands can recognise it without loading the validation's imports.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
