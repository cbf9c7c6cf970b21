# konspekt's MinIO init, one script for Kubernetes (the Job in this folder, from a generated
# ConfigMap) and docker-compose (service minio-init, mounted). Run with the MinIO root
# credentials, once per deployment and again at any time (idempotent). It:
#   1. creates the bucket;
#   2. imports the ONE lifecycle rule konspekt uses: id konspekt-expire, prefix jobs/, expire
#      after EXPIRE_DAYS days, unfinished multipart uploads aborted as soon. The gateway sets the
#      same rule at start (konspekt.storage.EXPIRY_RULE_ID / EXPIRY_PREFIX); `mc ilm rule import`
#      replaces the bucket's whole lifecycle configuration, so a re-run never adds a second rule;
#   3. creates the policy konspekt-<bucket> (this bucket only: list it, read, write and delete its
#      objects, multipart, its lifecycle rule) and the user KONSPEKT_S3_ACCESS_KEY with it, so the
#      services never use the root user.
# Needs only a POSIX shell's builtins and `mc`: the pinned minio/mc image (ubi-micro) has no sed,
# grep or awk (tests/deploy/test_minio_init.py runs it with nothing else on PATH).
#
# Environment: MINIO_URL (http://host:9000), MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, BUCKET,
# KONSPEKT_S3_ACCESS_KEY, KONSPEKT_S3_SECRET_KEY; optional EXPIRE_DAYS (1), MC_CONFIG_DIR.
set -eu

for var in MINIO_URL MINIO_ROOT_USER MINIO_ROOT_PASSWORD BUCKET KONSPEKT_S3_ACCESS_KEY KONSPEKT_S3_SECRET_KEY; do
  eval "value=\${$var:-}"
  if [ -z "$value" ]; then
    echo "konspekt-init: $var is not set" >&2
    exit 2
  fi
done
if [ "$KONSPEKT_S3_ACCESS_KEY" = "$MINIO_ROOT_USER" ]; then
  echo "konspekt-init: KONSPEKT_S3_ACCESS_KEY is the MinIO root user; give konspekt its own user" >&2
  exit 2
fi

RULE_ID=konspekt-expire
PREFIX=jobs/
DAYS=${EXPIRE_DAYS:-1}
POLICY="konspekt-$BUCKET"
POLICY_FILE="${TMPDIR:-/tmp}/konspekt-policy.json"

mc alias set konspektroot "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "konspektroot/$BUCKET"

printf '%s\n' "{\"Rules\": [{\"ID\": \"$RULE_ID\", \"Status\": \"Enabled\", \"Filter\": {\"Prefix\": \"$PREFIX\"}, \"Expiration\": {\"Days\": $DAYS}, \"AbortIncompleteMultipartUpload\": {\"DaysAfterInitiation\": $DAYS}}]}" \
  | mc ilm rule import "konspektroot/$BUCKET"
mc ilm rule ls "konspektroot/$BUCKET"

printf '%s\n' "{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {
      \"Effect\": \"Allow\",
      \"Action\": [\"s3:GetBucketLocation\", \"s3:ListBucket\", \"s3:ListBucketMultipartUploads\",
                 \"s3:GetLifecycleConfiguration\", \"s3:PutLifecycleConfiguration\"],
      \"Resource\": [\"arn:aws:s3:::$BUCKET\"]
    },
    {
      \"Effect\": \"Allow\",
      \"Action\": [\"s3:GetObject\", \"s3:PutObject\", \"s3:DeleteObject\",
                 \"s3:AbortMultipartUpload\", \"s3:ListMultipartUploadParts\"],
      \"Resource\": [\"arn:aws:s3:::$BUCKET/*\"]
    }
  ]
}" >"$POLICY_FILE"
mc admin policy create konspektroot "$POLICY" "$POLICY_FILE"
mc admin user add konspektroot "$KONSPEKT_S3_ACCESS_KEY" "$KONSPEKT_S3_SECRET_KEY"
# mc fails when the policy is attached already (a re-run): check the result instead
mc admin policy attach konspektroot "$POLICY" --user "$KONSPEKT_S3_ACCESS_KEY" || true
info=$(mc admin user info konspektroot "$KONSPEKT_S3_ACCESS_KEY")
case "$info" in
  *"$POLICY"*) ;;
  *)
    echo "konspekt-init: policy $POLICY is not attached to $KONSPEKT_S3_ACCESS_KEY:" >&2
    echo "$info" >&2
    exit 1
    ;;
esac
echo "konspekt-init: bucket $BUCKET, lifecycle rule $RULE_ID ($PREFIX, $DAYS d), user $KONSPEKT_S3_ACCESS_KEY with policy $POLICY"
