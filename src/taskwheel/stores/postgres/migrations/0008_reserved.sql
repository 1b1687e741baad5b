-- Reserved (version 8): another branch's migration takes this number at merge. This
-- placeholder only keeps the numbers 1..n on this branch; drop it when merging.
SELECT 1;
