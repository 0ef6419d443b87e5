"""A scikit-learn gallery-style script seeded through random_state=: no mltrail import."""

import pickle

from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

X, y = make_classification(n_samples=300, n_features=8, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
clf = RandomForestClassifier(n_estimators=20, random_state=0).fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.6f}")
with open("model.pkl", "wb") as f:
    pickle.dump(clf, f)
