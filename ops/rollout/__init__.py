"""Progressive delivery: a release taken through declared traffic steps, each promoted only when
the new version's own series pass the service's objectives (`analysis`), rolled back when they
fail (`controller`); `platform rollout` (`ops.operator.rollout`) drives it."""
