-- Version 14 is the rate limits' (branch rates), merged separately: this placeholder
-- keeps the versions numbered 1..n on the key gates' branch and gives way to it.
SELECT 1;
