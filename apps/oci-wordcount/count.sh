#!/bin/sh
# Count the words, lines and bytes of this task's input chunk (file i+1 of i's bag when the
# bag has one task per input file), else of every input file; write /out/counts.json.
set -eu
if [ -n "${IEXEC_INPUT_FILES_NUMBER:-}" ] && [ "$IEXEC_INPUT_FILES_NUMBER" = "${IEXEC_BOT_SIZE:-1}" ]; then
  n=$(( ${IEXEC_BOT_TASK_INDEX:-0} + 1 ))
  eval "files=\"/in/\${IEXEC_INPUT_FILE_NAME_$n}\""
else
  files=$(find /in -type f 2>/dev/null | sort)
fi
words=0; lines=0; bytes=0; count=0
for f in $files; do
  set -- $(wc -l -w -c < "$f")
  lines=$((lines + $1)); words=$((words + $2)); bytes=$((bytes + $3)); count=$((count + 1))
done
printf '{"files": %d, "words": %d, "lines": %d, "bytes": %d}\n' "$count" "$words" "$lines" "$bytes" > /out/counts.json
