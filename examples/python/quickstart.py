"""One prompt through a pool of Gemini API keys, configured by the environment."""

import sys

from gemini_rotator import AllKeysRateLimitedError, GeminiClient, GeminiError

gemini = GeminiClient()  # a pool from GEMINI_FREE_KEYS, GEMINI_PAID_KEY, ...; or GeminiClient(pool)
try:
    print(gemini.simple_query("Your prompt here"))
    response = gemini.generate_content(prompt="Your prompt here", temperature=0.7,
                                       max_output_tokens=1000, top_p=0.9)
    print(response.text, f"(key {response.key_fingerprint})")
except AllKeysRateLimitedError as e:
    sys.exit(f"every key is at its limit: retry in {e.retry_after:.1f} s")
except GeminiError as e:
    sys.exit(f"gemini-rotator: {e}")
finally:
    gemini.close()
