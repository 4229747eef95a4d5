#!/usr/bin/env bash
# Echo middleware (GoReplay protocol): every message is passed back unchanged.
#
# Each stdin line is one hex-encoded message: "<type> <id> <ts> <latency>\n<HTTP bytes>".
# We log the message type on stderr - stdout is reserved for the protocol - and write the
# line back to keep it. The type is the first header byte: hex 31 "1", 32 "2", 33 "3".
#
#   replaygate convert in.gor out.gor --middleware "examples/middleware/echo.sh"

log() {
    >&2 echo "[DEBUG][ECHO] $1"
}

while IFS= read -r line; do
    case "${line:0:2}" in
        31) log "Request type: Request" ;;
        32) log "Request type: Original Response" ;;
        33) log "Request type: Replayed Response" ;;
        *) log "Unknown request type ${line:0:2}" ;;
    esac
    printf '%s\n' "$line"
done
