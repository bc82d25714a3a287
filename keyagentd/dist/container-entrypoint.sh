#!/bin/sh
# An entrypoint for a container whose processes' request_key() upcalls are
# answered inside the container, with its own request-key.conf and handlers:
#
#   ENTRYPOINT ["/usr/local/share/doc/keyagentd/examples/container-entrypoint.sh"]
#   CMD ["my-service", "--its-args"]
#
# keyagentd joins a new session keyring, registers there as the agent for the
# types in KEYAGENTD_OPTIONS (default: --type user) and runs the command in it; the command's requests (and its
# children's) go to keyagentd. keyagentd reaps orphans as PID 1 must, passes
# SIGTERM and SIGINT on, reloads on SIGHUP, and exits with the command's
# status. The host must have loaded the keyagent module.
exec keyagentd -R --errors request-key ${KEYAGENTD_OPTIONS:---type user} -- "$@"
