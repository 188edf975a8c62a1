/**
 * The only module that imports third-party code. Everything else in srv
 * imports from here, so swapping a dependency touches one file.
 *
 * @module
 */

export {
  array,
  boolean,
  define,
  enums,
  type Infer,
  literal,
  nullable,
  optional,
  string,
  type Struct,
  type as looseObject,
  unknown,
  validate,
} from "npm:superstruct@2.0.2";

export {
  configure,
  dispose,
  getAnsiColorFormatter,
  getLogger,
  getTextFormatter,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  reset,
} from "npm:@logtape/logtape@2.4.2";
