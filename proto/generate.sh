#!/usr/bin/env bash
# Generates the TypeScript of every .proto file under proto/ into proto/gen/ (or into the
# folder given as $1) with protoc and ts-proto. The output is committed, so a build does
# not need protoc; test/proto/generated.test.ts checks that it is up to date.
#
# Options, and why:
#   esModuleInterop=true, importSuffix=.js  the project is ESM (NodeNext) with esModuleInterop
#   env=both                                bytes are Uint8Array (env=node would make them Buffer)
#   forceLong=number                        64-bit fields are numbers; the decoder throws past 2^53
#   useOptionals=messages                   a message field may be left out; scalars are always set
#   enumsAsLiterals=true, unrecognizedEnum=false
#                                           enums are `as const` objects, and an unknown value stays
#                                           a number for proto/wire.ts to refuse
#   outputServices=grpc-js                  service definitions and typed clients for @grpc/grpc-js
#   outputJsonMethods=false, outputPartialMethods=false
#                                           neither the JSON mapping nor fromPartial/create is used:
#                                           proto/wire.ts builds every message in full
#   annotateFilesWithVersion=false          the output does not change with protoc's patch version
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/proto/gen}"
plugin="$root/node_modules/.bin/protoc-gen-ts_proto"
options=(
  esModuleInterop=true
  importSuffix=.js
  env=both
  forceLong=number
  useOptionals=messages
  enumsAsLiterals=true
  unrecognizedEnum=false
  outputServices=grpc-js
  outputJsonMethods=false
  outputPartialMethods=false
  annotateFilesWithVersion=false
)
command -v protoc >/dev/null || { echo "proto/generate.sh: protoc is not installed (apt-get install protobuf-compiler)" >&2; exit 127; }
cd "$root/proto"
files=(bulwark/v1/*.proto grpc/health/v1/health.proto)
rm -rf "$out"
mkdir -p "$out"
protoc --plugin="protoc-gen-ts_proto=$plugin" --ts_proto_out="$out" --ts_proto_opt="$(IFS=,; echo "${options[*]}")" -I . "${files[@]}"
