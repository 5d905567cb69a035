// Package xdp holds rstguard's XDP program and the Go bindings bpf2go
// generates for it. The generated files are committed so that a plain
// `go build` needs no clang; `make generate` rebuilds them.
package xdp

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -Ibpf/include" -target bpfel -type event -type flow_key -type flow_value -type dir_state -type config -type allow_key -type signal -type verdict -type action -type counter -type iface_slots -type event_kind -type context_limits -type flow_state -type ipid_model -type mode -type abi -type dir_flag -type flow_flag -type xsk_key -type xsk_slot -type hold -type hold_outcome -type hold_evidence -type hold_limits -type parse_limits -type policy_default -type zone_key -type event_budgets -type signal_weight -type tcp_flag -type time_unit -type redirect_err_record -type devmap_xmit_record Rstguard bpf/rstguard.c
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -Ibpf/include" -target bpfel Baseline bpf/baseline.c
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -Ibpf/include" -target bpfel Pktgen bpf/pktgen.c
