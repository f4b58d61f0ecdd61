#include "teatree/common/secret_text.h"

#include <gtest/gtest.h>

namespace teatree {
namespace {

TEST(SecretTextTest, TokensAndPasswordsAreSecretsButFilesHoldingThemAreNot) {
  for (const char* name : {"nats-token", "token", "nats-password", "s3-secret"}) {
    EXPECT_TRUE(IsSecretOption(name)) << name;
  }
  for (const char* name : {"nats-token-file", "token-file", "nats-password-file", "nats-creds",
                           "nats-nkey-seed", "nats-nkey", "tls-key", "data-dir"}) {
    EXPECT_FALSE(IsSecretOption(name)) << name;
  }
  EXPECT_EQ(OptionVariable("http-max-body-mb"), "TEATREE_HTTP_MAX_BODY_MB");
}

TEST(SecretTextTest, UrlPasswordsAreRedactedWhereverTheyAre) {
  EXPECT_EQ(WithoutUrlPasswords("postgresql://app:pg%40ss@db:5432/teatree"),
            "postgresql://app:(redacted)@db:5432/teatree");
  EXPECT_EQ(WithoutUrlPasswords("nats://a:x@h1:4222,nats://b:y@h2:4222"),
            "nats://a:(redacted)@h1:4222,nats://b:(redacted)@h2:4222");
  EXPECT_EQ(WithoutUrlPasswords("cannot connect to nats://tok@h:4222 (refused)"),
            "cannot connect to nats://tok@h:4222 (refused)");  // A user alone is no password.
  EXPECT_EQ(WithoutUrlPasswords("s3://bucket/path?region=x"), "s3://bucket/path?region=x");
}

// What a launcher hands a child: secrets in its environment, never on its command line.
TEST(SecretTextTest, SecretsMoveFromTheArgumentsToTheEnvironment) {
  auto split =
      MoveSecretsToEnvironment({"--nats", "nats://127.0.0.1:4222", "--nats-token", "t0k",
                                "--control", "postgresql://app:pw@db/x", "--nats-token-file",
                                "/run/secrets/nats", "--mirror-versions", "--batch-size", "256"});
  EXPECT_EQ(split.args, (std::vector<std::string>{"--nats", "nats://127.0.0.1:4222",
                                                  "--nats-token-file", "/run/secrets/nats",
                                                  "--mirror-versions", "--batch-size", "256"}));
  EXPECT_EQ(split.environment,
            (std::map<std::string, std::string>{{"TEATREE_NATS_TOKEN", "t0k"},
                                                {"TEATREE_CONTROL", "postgresql://app:pw@db/x"}}));
}

}  // namespace
}  // namespace teatree
