#!/usr/bin/env bash
# Cost of the console's stories poll: one 200, then conditional GETs answered 304.
set -euo pipefail
base=${1:-http://127.0.0.1:18931}
token=$(curl -s -X POST "$base/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"ed@example.com","password":"correct horse battery staple"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
url="$base/v1/admin/stories?limit=30"
curl -s -o /tmp/cdemo/page.json -D /tmp/cdemo/h.txt -H "authorization: Bearer $token" -w 'first: %{http_code} %{size_download} bytes %{time_total}s\n' "$url"
etag=$(grep -i '^etag:' /tmp/cdemo/h.txt | cut -d' ' -f2- | tr -d '\r')
for i in $(seq 1 200); do
  curl -s -o /dev/null -H "authorization: Bearer $token" -H "if-none-match: $etag" -w '%{http_code} %{size_download} %{time_total}\n' "$url"
done | awk '{n++; c[$1]++; s+=$3; b+=$2; if($3>m)m=$3} END {for (k in c) printf "status %s: %d\n", k, c[k]; printf "304 polls: mean %.2f ms, max %.2f ms, body %d bytes\n", s/n*1000, m*1000, b/n}'
