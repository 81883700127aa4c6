'use strict'
throw new Error('phantom-edge: @napi-rs/cross-toolchain / @napi-rs/wasm-tools are stubbed out (cross and WASI builds are not supported here)')
