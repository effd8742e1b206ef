// pureimage's typings import opentype.js, which ships none; the plots only use pureimage's own API.
declare module 'opentype.js' {
  export type Font = unknown;
}
