"""What the pages share: navigation, this session's jobs, cached loads, model choices, messages, runs.

Every page imports from here first, so this is where a process that started in Streamlit's legacy
multipage mode leaves it (pages/parts/navigation.py says why).
"""

from pages.parts.navigation import leave_legacy_multipage_mode

leave_legacy_multipage_mode()
