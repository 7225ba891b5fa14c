# Shared by scripts/bench-serve.sh and scripts/instructions-serve.sh (sourced, not run): the
# config that puts llmux in front of the fake upstream, and the wrk scripts of the load.

# write_bench_config FILE UPSTREAM_URL: one model group `bench` on the fake upstream.
write_bench_config() {
    cat >"$1" <<CONFIG
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: $2/v1
      api_key: sk-bench-not-a-key
CONFIG
    chmod 600 "$1"
}

# write_wrk_scripts DIR: DIR/false.lua (plain answers) and DIR/true.lua (streams).
write_wrk_scripts() {
    local stream
    for stream in false true; do
        cat >"$1/$stream.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","stream":$stream,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say something about foxes."}]}'
LUA
    done
}
